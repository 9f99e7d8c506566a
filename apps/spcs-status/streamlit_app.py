"""Ray on SPCS, status page (Streamlit in Snowflake): services, their status and public URLs, and the
compute pools with suspend/resume. Shows what the current role owns; runs with the role's own rights."""

import streamlit as st
from snowflake.snowpark.context import get_active_session

session = get_active_session()
role = session.sql("SELECT CURRENT_ROLE()").collect()[0][0]


def rows(sql: str) -> list[dict]:
    return [row.as_dict() for row in session.sql(sql).collect()]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


st.title("Ray on Snowpark Container Services")
st.caption(f"Objects owned by {role}. Public URLs need a Snowflake login (browser) or a token (programs).")

st.header("Services")
services = [s for s in rows("SHOW SERVICES IN SCHEMA") if s.get("owner") == role]
if not services:
    st.info("No services yet: run `./bin/deploy spcs`.")
for service in services:
    fqn = ".".join(quoted(service[k]) for k in ("database_name", "schema_name", "name"))
    with st.expander(f"{service['name']}: {service['status']} ({service['current_instances']} instances)", True):
        st.write(f"Compute pool: {service['compute_pool']}; DNS name: `{service['dns_name']}`")
        for endpoint in rows(f"SHOW ENDPOINTS IN SERVICE {fqn}"):
            if str(endpoint.get("is_public")).lower() == "true":
                url = endpoint.get("ingress_url") or ""
                link = f"[https://{url}](https://{url})" if "." in url and " " not in url else url
                st.write(f"- {endpoint['name']}: {link}")
        if st.button("Show container status", key=f"status-{fqn}"):
            st.dataframe(rows(f"SHOW SERVICE CONTAINERS IN SERVICE {fqn}"))

st.header("Compute pools")
for pool in [p for p in rows("SHOW COMPUTE POOLS") if p.get("owner") == role]:
    left, middle, right = st.columns([3, 1, 1])
    left.write(f"**{pool['name']}** {pool['instance_family']}: {pool['state']}, "
               f"{pool['active_nodes']}/{pool['max_nodes']} nodes")
    if middle.button("Suspend", key=f"suspend-{pool['name']}", disabled=pool["state"] == "SUSPENDED"):
        session.sql(f"ALTER COMPUTE POOL {quoted(pool['name'])} SUSPEND").collect()
        st.rerun()
    if right.button("Resume", key=f"resume-{pool['name']}", disabled=pool["state"] != "SUSPENDED"):
        session.sql(f"ALTER COMPUTE POOL {quoted(pool['name'])} RESUME").collect()
        st.rerun()
