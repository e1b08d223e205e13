from maestro_cli.cli.app import main

main()
