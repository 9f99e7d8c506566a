-- Ray on SPCS (ray-platform): runs in the consumer's account on every install and upgrade, so every
-- statement is idempotent. Procedures live in the versioned schema app_public; services, their stages and
-- the Grafana secret live in the plain schema `services` (a versioned schema cannot hold services).

CREATE APPLICATION ROLE IF NOT EXISTS app_user;

CREATE SCHEMA IF NOT EXISTS services;
GRANT USAGE ON SCHEMA services TO APPLICATION ROLE app_user;
-- artifacts (mounted at /artifacts) and finished logs (/raydplogs): they survive upgrades and cluster restarts
CREATE STAGE IF NOT EXISTS services.artifacts DIRECTORY = (ENABLE = TRUE) ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE');
CREATE STAGE IF NOT EXISTS services.logs DIRECTORY = (ENABLE = TRUE) ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE');
GRANT READ, WRITE ON STAGE services.artifacts TO APPLICATION ROLE app_user;
GRANT READ ON STAGE services.logs TO APPLICATION ROLE app_user;

CREATE OR ALTER VERSIONED SCHEMA app_public;
GRANT USAGE ON SCHEMA app_public TO APPLICATION ROLE app_user;

-- ----------------------------------------------------------------------------------------- references

CREATE OR REPLACE PROCEDURE app_public.register_reference(ref_name STRING, operation STRING, ref_or_alias STRING)
  RETURNS STRING
  LANGUAGE SQL
  AS $$
  BEGIN
    CASE (operation)
      WHEN 'ADD' THEN SELECT SYSTEM$SET_REFERENCE(:ref_name, :ref_or_alias);
      WHEN 'REMOVE' THEN SELECT SYSTEM$REMOVE_REFERENCE(:ref_name, :ref_or_alias);
      WHEN 'CLEAR' THEN SELECT SYSTEM$REMOVE_ALL_REFERENCES(:ref_name);
      ELSE RETURN 'unknown operation: ' || operation || ' (allowed: ADD, REMOVE, CLEAR)';
    END CASE;
    RETURN NULL;
  END;
  $$;
GRANT USAGE ON PROCEDURE app_public.register_reference(STRING, STRING, STRING) TO APPLICATION ROLE app_user;

-- Snowsight asks this when the consumer creates the integration from the app's page.
CREATE OR REPLACE PROCEDURE app_public.get_config_for_ref(ref_name STRING)
  RETURNS STRING
  LANGUAGE SQL
  AS $$
  BEGIN
    CASE (UPPER(ref_name))
      WHEN 'EGRESS_EAI' THEN
        RETURN OBJECT_CONSTRUCT('type', 'CONFIGURATION', 'payload', OBJECT_CONSTRUCT(
          'host_ports', ARRAY_CONSTRUCT('pypi.org', 'files.pythonhosted.org', 'huggingface.co'),
          'allowed_secrets', 'NONE'))::STRING;
      ELSE RETURN '';
    END CASE;
  END;
  $$;
GRANT USAGE ON PROCEDURE app_public.get_config_for_ref(STRING) TO APPLICATION ROLE app_user;

-- ------------------------------------------------------------------------------------------- the cluster
-- Handlers: python/ray_cluster.py; spec files and the families they cover: python/catalog.json (rendered at
-- deploy time from components/spcs/specs.py, the `spcs` stack's renderer).

CREATE OR REPLACE PROCEDURE app_public.start_cluster(request VARIANT)
  RETURNS STRING
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.start_cluster';
GRANT USAGE ON PROCEDURE app_public.start_cluster(VARIANT) TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.resize_cluster(request VARIANT)
  RETURNS STRING
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.resize_cluster';
GRANT USAGE ON PROCEDURE app_public.resize_cluster(VARIANT) TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.stop_cluster()
  RETURNS STRING
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.stop_cluster';
GRANT USAGE ON PROCEDURE app_public.stop_cluster() TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.scale_group(group_name STRING, min_nodes INT, max_nodes INT)
  RETURNS STRING
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.scale_group';
GRANT USAGE ON PROCEDURE app_public.scale_group(STRING, INT, INT) TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.cluster_status()
  RETURNS STRING
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.cluster_status';
GRANT USAGE ON PROCEDURE app_public.cluster_status() TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.service_logs(group_name STRING, container STRING, lines INT)
  RETURNS STRING
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.service_logs';
GRANT USAGE ON PROCEDURE app_public.service_logs(STRING, STRING, INT) TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.service_containers()
  RETURNS TABLE ()
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.service_containers';
GRANT USAGE ON PROCEDURE app_public.service_containers() TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.service_endpoints()
  RETURNS TABLE ()
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.service_endpoints';
GRANT USAGE ON PROCEDURE app_public.service_endpoints() TO APPLICATION ROLE app_user;

CREATE OR REPLACE PROCEDURE app_public.cluster_options()
  RETURNS STRING
  LANGUAGE PYTHON
  RUNTIME_VERSION = '3.11'
  PACKAGES = ('snowflake-snowpark-python')
  IMPORTS = ('/python/ray_cluster.py', '/python/catalog.json')
  HANDLER = 'ray_cluster.cluster_options';
GRANT USAGE ON PROCEDURE app_public.cluster_options() TO APPLICATION ROLE app_user;

-- ------------------------------------------------------------------------------------------- the console

CREATE OR REPLACE STREAMLIT app_public.ray_console
  FROM '/streamlit'
  MAIN_FILE = '/ray_console.py';
GRANT USAGE ON STREAMLIT app_public.ray_console TO APPLICATION ROLE app_user;
