from mkdocs_cfpurge.cli import main

main()
