"""The app's console in Snowsight: start, scale and stop the Ray cluster; status, endpoints and logs."""

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

st.header("Cluster")
status = json.loads(first_value("CALL app_public.cluster_status()") or "{}")
if status.get("services"):
    st.dataframe(status["services"])
    st.subheader("Endpoints")
    for row in call("CALL app_public.service_endpoints()"):
        url = row.get("ingress_url") or ""
        st.markdown(f"- **{row.get('name')}**: " + (f"[https://{url}](https://{url})" if "." in url else url))
else:
    st.info("No cluster yet.")

st.header("Start")
head_family = st.selectbox("Head instance family", sorted(options.get("head", {})))
worker_family = st.selectbox("Worker instance family", sorted(options.get("worker", {})))
low, high = st.slider("Worker nodes (min, max)", 1, 20, (1, 2))  # pools need MIN_NODES > 0; idle pools suspend
warehouse = st.text_input("Query warehouse (granted to the app)", "")
if st.button("Start cluster"):
    request = {"head": {"instance_family": head_family},
               "workers": [{"name": "workers", "instance_family": worker_family, "min_nodes": low, "max_nodes": high}]}
    if warehouse:
        request["warehouse"] = warehouse
    session.call("app_public.start_cluster", json.dumps(request))
    st.rerun()

st.header("Logs")
group = st.text_input("Node group", "head")
container = st.text_input("Container", "ray-head")
if st.button("Show logs"):
    st.code(first_value(f"CALL app_public.service_logs('{group}', '{container}', 200)"))

if st.button("Stop cluster", type="primary"):
    session.call("app_public.stop_cluster")
    st.rerun()
