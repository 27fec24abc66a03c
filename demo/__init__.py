"""The bundled demo model's world (space.py): shared by its nodes, trainer, benchmark and tests."""
