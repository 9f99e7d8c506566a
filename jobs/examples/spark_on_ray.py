"""Spark on Ray (RayDP), as in the SPCS seed: start Spark executors as Ray actors, run a small aggregation,
write it as Parquet to the stack's storage, stop Spark.

Needs `raydp` (and Java 8/11/17) in the cluster's image: `pip install raydp==1.6.5` installs with Ray 2.60
(it pulls pyspark 3.5.7) and runs on Java 17. Without it the job stops at once with a clear message.
Storage: a local path or a mounted stage is written as file://; s3:// becomes s3a:// with the stack's
endpoint (MinIO) and path-style access (the hadoop-aws jar must be on Spark's classpath, e.g. via
--jars-packages); gs:// needs the GCS connector jar likewise.

    ./bin/jobs submit --stack dev --working-dir jobs/examples -- python spark_on_ray.py --executors 2
"""

from __future__ import annotations

import argparse
import os
import time
from urllib.parse import urlparse

URI_ENV = "RAY_PLATFORM_STORAGE_URI"
ENDPOINT_ENV = "RAY_PLATFORM_STORAGE_ENDPOINT"
MOUNT_ENV = "RAY_PLATFORM_STORAGE_MOUNT"
HADOOP_AWS = "org.apache.hadoop:hadoop-aws:3.3.4"


def spark_output_uri(storage_uri: str, mount: str | None = None) -> str:
    """Where Spark writes, in the scheme Spark's Hadoop filesystems know."""
    if storage_uri.startswith("@"):
        if not mount:
            raise SystemExit(f"storage {storage_uri} is a Snowflake stage; {MOUNT_ENV} must say where it is mounted")
        return f"file://{os.path.abspath(mount)}"
    parsed = urlparse(storage_uri)
    if parsed.scheme == "s3":
        return f"s3a://{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme in ("gs", "gcs"):
        return f"gs://{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme in ("", "file"):
        return f"file://{os.path.abspath(parsed.path if parsed.scheme else storage_uri)}"
    raise SystemExit(f"unsupported storage URI {storage_uri!r}")


def spark_configs(storage_uri: str, endpoint: str | None, packages: list[str]) -> dict[str, str]:
    """Spark settings for the storage: S3A against the stack's endpoint (MinIO), path-style."""
    configs: dict[str, str] = {}
    if storage_uri.startswith("s3://"):
        packages = [*packages, HADOOP_AWS]
        configs["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
        )
        if endpoint:
            configs["spark.hadoop.fs.s3a.endpoint"] = endpoint
            configs["spark.hadoop.fs.s3a.path.style.access"] = "true"
            configs["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https")).lower()
    if packages:
        configs["spark.jars.packages"] = ",".join(packages)
    return configs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Spark on Ray (RayDP): aggregate and write Parquet to storage")
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--executor-cores", type=int, default=1)
    parser.add_argument("--executor-memory", default="1g", help="Spark memory string, e.g. 512m, 2g")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--storage", help="storage URI (default: RAY_PLATFORM_STORAGE_URI)")
    parser.add_argument("--name", default=None, help="output name (default: spark-<time>)")
    parser.add_argument("--packages", default="", help="extra Maven packages for Spark, comma separated")
    args = parser.parse_args(argv)
    if args.executors < 1 or args.executor_cores < 1 or args.rows < 1:
        parser.error("--executors, --executor-cores and --rows must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    storage_uri = args.storage or os.environ.get(URI_ENV)
    if not storage_uri:
        raise SystemExit(f"no storage: pass --storage URI or set {URI_ENV}")
    name = args.name or time.strftime("spark-%Y%m%d-%H%M%S")
    output = f"{spark_output_uri(storage_uri, os.environ.get(MOUNT_ENV))}/spark/{name}"
    packages = [package for package in args.packages.split(",") if package]
    configs = spark_configs(storage_uri, os.environ.get(ENDPOINT_ENV), packages)
    try:
        import raydp
    except ImportError:
        raise SystemExit("raydp is not installed on this cluster: add raydp==1.6.5 (and a JRE) to its image") from None

    import ray

    ray.init()
    spark = raydp.init_spark(
        app_name="ray-platform-spark-example",
        num_executors=args.executors,
        executor_cores=args.executor_cores,
        executor_memory=args.executor_memory,
        configs=configs,
    )
    try:
        counts = spark.range(args.rows).selectExpr("id % 10 AS bucket").groupBy("bucket").count()
        counts.write.mode("overwrite").parquet(output)
        rows = sorted((row["bucket"], row["count"]) for row in counts.collect())
        print(f"bucket counts: {rows}")
        print(f"wrote {output}")
    finally:
        raydp.stop_spark()


if __name__ == "__main__":
    main()
