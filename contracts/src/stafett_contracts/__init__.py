"""The one definition of every Stafett event (ARCHITECTURE.md section 3).

Not built yet: the event Structs, their JSON Schema and the AsyncAPI document arrive with the
contracts issue. The package exists so that services can already depend on it.
"""
