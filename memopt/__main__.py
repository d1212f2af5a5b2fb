from memopt.cli import entry

entry()
