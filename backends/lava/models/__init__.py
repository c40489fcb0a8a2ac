"""snnc's Lava Processes and their ProcessModels, alone in their folder.

Lava finds a Process's models by importing every module in the folder of the file that
defines the Process, each under its bare file name. Any other module of the backend placed
there would be imported a second time under another name (the backend's registration
then runs twice); so this folder holds the Processes and nothing else."""
