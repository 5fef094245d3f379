from undying.cli.main import main

main()
