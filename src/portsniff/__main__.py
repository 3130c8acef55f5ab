from portsniff.cli import main

raise SystemExit(main())
