from maestro_cli.cli import main

main()
