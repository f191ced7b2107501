"""The one definition of every Stafett event (ARCHITECTURE.md section 3), and the vocabulary
every service shares over them.

- the events, by owner: `case`, `consent`, `meeting`, `notify`, `audit` (listed in `catalogue`),
  each a frozen msgspec Struct with its envelope (`envelope`); identity (`identity`) and sealed
  personal data (`personal`);
- `casefile`: the one fold of a case's events, which every service reads a case through, and
  who decides on a case;
- `staircase`: the levels a case may move between; role groups (`STAFF`, `FAMILY`) are in
  `identity`, the purposes of taking part in a case (`TAKING_PART`) in `consent`;
- `access`: the one access rule, who may read a case and what of it;
- `people`: the shapes of the population register's answers and the municipality directory;
- `export` and `asyncapi`: the JSON Schemas and the AsyncAPI document, made from the code.
"""
