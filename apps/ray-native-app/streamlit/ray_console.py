"""The app's console in Snowsight: create and resize the Ray (RayDP) cluster, its status, endpoints and logs.

Every change goes through the app's procedures (start_cluster, resize_cluster, stop_cluster), which check a
request against the instance families this version ships specs for and say what is allowed.
"""

from __future__ import annotations

import json

import streamlit as st
from snowflake.snowpark.context import get_active_session

session = get_active_session()


def call(statement: str) -> list[dict]:
    return [row.as_dict() for row in session.sql(statement).collect()]


def first_value(statement: str) -> str:
    rows = session.sql(statement).collect()
    return str(rows[0][0]) if rows else ""


st.title("Ray on Snowpark Container Services")
options = json.loads(first_value("CALL app_public.cluster_options()") or "{}")
if options.get("raydp"):
    st.caption("RayDP: the head is the Spark driver; every node carries Java and raydp. Spark's UI is the "
               "spark-ui endpoint while a Spark session runs on the head.")

st.header("Cluster")
status = json.loads(first_value("CALL app_public.cluster_status()") or "{}")
running = bool(status.get("services"))
if running:
    st.dataframe(status["services"])
    st.subheader("Endpoints")
    for row in call("CALL app_public.service_endpoints()"):
        url = row.get("ingress_url") or ""
        st.markdown(f"- **{row.get('name')}**: " + (f"[https://{url}](https://{url})" if "." in url else url))
else:
    st.info("No cluster yet: choose its shape below and create it.")

st.header("Create or resize" if running else "Create")
head_family = st.selectbox("Head instance family (fixed while the cluster runs)", sorted(options.get("head", [])))
st.write("Worker groups: one compute pool each; a group's nodes scale between min and max "
         "(at least 1: an idle pool suspends after an hour instead). Changing a group's family recreates it.")
groups = st.data_editor(
    [{"name": "workers", "instance_family": sorted(options.get("worker", ["CPU_X64_M"]))[0], "min_nodes": 1,
      "max_nodes": 2}],
    num_rows="dynamic", key="groups",
    column_config={"instance_family": st.column_config.SelectboxColumn(options=sorted(options.get("worker", []))),
                   "min_nodes": st.column_config.NumberColumn(min_value=1, max_value=100, step=1),
                   "max_nodes": st.column_config.NumberColumn(min_value=1, max_value=100, step=1)})
warehouse = st.text_input("Query warehouse (granted to the app)", "")
request = {"head": {"instance_family": head_family},
           "workers": [{k: int(v) if k.endswith("_nodes") else v for k, v in g.items()} for g in groups if g.get("name")]}
if warehouse:
    request["warehouse"] = warehouse
procedure = "app_public.resize_cluster" if running else "app_public.start_cluster"
if st.button("Apply" if running else "Create cluster"):
    try:
        session.call(procedure, json.dumps(request))
        st.rerun()
    except Exception as error:  # noqa: BLE001 the procedure's message says what is allowed
        st.error(str(error))

st.header("Logs")
group = st.text_input("Node group", "head")
container = st.text_input("Container", "ray-head")
if st.button("Show logs"):
    st.code(first_value(f"CALL app_public.service_logs('{group}', '{container}', 200)"))
st.caption("Ray's and Spark's logs are also copied every few minutes to the stage services.logs (RAYDPLOGS).")

if running and st.button("Stop cluster", type="primary"):
    session.call("app_public.stop_cluster")
    st.rerun()
