from aws_s3_wodle.cli.main import main

raise SystemExit(main())
