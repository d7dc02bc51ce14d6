"""The PostgreSQL catalogue: migrations, connections and the queries the functions share."""
