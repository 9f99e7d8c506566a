"""The Snowflake Native App that ships Ray on SPCS: app files, application package, versions, consumer install."""
