from aws_s3_wodle.cli.main import entry

entry()
