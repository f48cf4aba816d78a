"""The ``loom`` command: ``loom up`` for everything in one process, one
subcommand per service for the distributed mode."""

from __future__ import annotations

import sys
from typing import Any

import click

from loom import eventloop, log
from loom.cmd.runner import Runner
from loom.config import Settings, load_settings
from loom.console import urls as console_urls
from loom.errors import LoomError


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    root = ctx.find_root().params
    try:
        settings = load_settings(root.get("config"), overrides=overrides)
    except LoomError as exc:
        raise click.ClickException(exc.message) from None
    log.setup(settings.log)
    return settings


def _run(coro: Any) -> None:
    try:
        eventloop.run(coro)
    except LoomError as exc:
        raise click.ClickException(exc.message) from None


db_option = click.option("--db", "db_url", help="Database URL (sqlite:///PATH or postgresql://...).")
bus_option = click.option("--bus", "bus_url", help="Message bus URL (memory:// or amqp://...).")
host_option = click.option("--host", "host", help="Host name this service runs as.")


@click.group(invoke_without_command=True)
@click.option("--config", type=click.Path(dir_okay=False), help="TOML configuration file.")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """Loom: an infrastructure-as-a-service compute controller."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="State directory (default ./.loom).")
@click.option("--port", type=int, help="API port (default 8774).")
@click.option("--listen", "listen", help="API listen address (default 127.0.0.1).")
@click.option("--fake-hosts", type=int, help="Run this many fake compute hosts (default 1).")
@click.option("--driver", type=click.Choice(["fake", "qemu"]), help="Hypervisor driver (default fake).")
@db_option
@bus_option
@click.pass_context
def up(ctx: click.Context, data_dir: str | None, port: int | None, listen: str | None, fake_hosts: int | None,
       driver: str | None, db_url: str | None, bus_url: str | None) -> None:
    """Run the whole cloud in one process."""
    settings = _settings(ctx, data_dir=data_dir, **{
        "api.port": port, "api.host": listen, "database.url": db_url, "bus.url": bus_url,
        "compute.fake_hosts": fake_hosts, "compute.driver": driver})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(settings, roles=("conductor", "scheduler", "compute", "api"), migrate_database=True,
                    bootstrap=True)
    _run(runner.run_until_signalled(on_ready=_print_ready))


def _print_ready(runner: Runner) -> None:
    s = runner.settings
    click.echo(f"Loom is up. Data directory: {s.data_dir.resolve()}")
    click.echo(f"  API:       {s.public_url}/")
    click.echo(f"  Health:    {s.public_url}/healthz")
    click.echo(f"  Database:  {s.database_url}")
    click.echo(f"  Bus:       {s.bus.url}")
    if runner.console_proxy is not None:
        click.echo(f"  Consoles:  {console_urls.serial_base(s.console).replace('ws://', 'http://')} "
                   "(noVNC from scripts/novnc.sh)")
    creds = runner.credentials
    if creds is not None:
        click.echo(f"  Identity:  {creds.auth_url}")
        click.echo(f"  User:      {creds.username} / {creds.password} (project {creds.project_name})")
        click.echo(f"Credentials for the openstack CLI: source {(s.data_dir / 'openrc').resolve()}")
    click.echo("Stop with Ctrl-C.")
    sys.stdout.flush()


def _service_command(role: str, doc: str) -> click.Command:
    @click.command(name=role, help=doc)
    @db_option
    @bus_option
    @host_option
    @click.option("--metrics-port", type=int, help="Serve Prometheus metrics on this port (default 0: off).")
    @click.pass_context
    def command(ctx: click.Context, db_url: str | None, bus_url: str | None, host: str | None,
                metrics_port: int | None, **extra: Any) -> None:
        overrides = {"database.url": db_url, "bus.url": bus_url, "service.host": host,
                     "service.metrics_port": metrics_port}
        if role == "api":
            overrides.update({"api.port": extra.get("port"), "api.host": extra.get("listen"),
                              "api.workers": extra.get("workers")})
        settings = _settings(ctx, **overrides)
        if role == "compute" and db_url:
            raise click.ClickException("compute hosts never open the database: drop --db")
        if role == "api" and settings.api.workers > 1:
            from loom.cmd import workers

            sys.exit(workers.serve(settings))
        runner = Runner(settings, roles=(role,))
        _run(runner.run_until_signalled())

    if role == "api":
        command = click.option("--port", type=int, help="Port to listen on.")(command)
        command = click.option("--listen", help="Address to listen on.")(command)
        command = click.option("--workers", type=int, help="API worker processes (default 1).")(command)
    return command


cli.add_command(_service_command("api", "Run the HTTP API service."))
cli.add_command(_service_command("conductor", "Run the conductor service."))
cli.add_command(_service_command("scheduler", "Run the scheduler service."))
cli.add_command(_service_command("compute", "Run a compute service (no database access)."))


@cli.command("console-proxy")
@db_option
@click.option("--port", type=int, help="Port to listen on (default 6080).")
@click.option("--listen", help="Address to listen on (default 127.0.0.1).")
@click.pass_context
def console_proxy(ctx: click.Context, db_url: str | None, port: int | None, listen: str | None) -> None:
    """Run the console proxy (serial websockets, noVNC) on its own; set
    console.with_api = false for the API processes then."""
    settings = _settings(ctx, **{"database.url": db_url, "console.port": port, "console.host": listen})
    _run(Runner(settings, roles=("console",)).run_until_signalled())


@cli.command("status")
@db_option
@click.option("--os-auth-url", envvar="OS_AUTH_URL", help="Identity URL (default: this configuration's API).")
@click.option("--os-username", envvar="OS_USERNAME", default="admin", show_default=True)
@click.option("--os-password", envvar="OS_PASSWORD", help="Default: the admin password in the data directory.")
@click.option("--os-project-name", envvar="OS_PROJECT_NAME", default="admin", show_default=True)
@click.option("--metrics", "metrics_urls", multiple=True,
              help="A service's metrics URL (repeat, or comma-separate) to measure its RPC rate.")
@click.pass_context
def status_command(ctx: click.Context, db_url: str | None, os_auth_url: str | None, os_username: str,
                   os_password: str | None, os_project_name: str, metrics_urls: tuple[str, ...]) -> None:
    """Every service up or down, with its host, last heartbeat and load."""
    import logging

    from loom.cmd import status
    from loom.identity.bootstrap import PASSWORD_FILE

    settings = _settings(ctx, **{"database.url": db_url})
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines are not the table
    if db_url:
        try:
            rows = eventloop.run(status.from_database(settings.database_url, settings.service.down_time))
        except Exception as exc:
            raise click.ClickException(f"cannot read the services from the database: {exc}") from None
    else:
        password = os_password or settings.identity.admin_password or None
        if password is None and (settings.data_dir / PASSWORD_FILE).exists():
            password = (settings.data_dir / PASSWORD_FILE).read_text().strip()
        if password is None:
            raise click.ClickException("no credentials: source an openrc, give --os-password, or use --db")
        try:
            with status.admin_client(os_auth_url or settings.public_url + "/identity/v3", os_username, password,
                                     os_project_name) as client:
                rows = status.from_api(client)
        except Exception as exc:
            raise click.ClickException(f"cannot read the services from the API: {exc}") from None
    urls = [u for arg in metrics_urls for u in arg.split(",") if u]
    if urls:
        rates = status.rpc_rates(urls)
        for row in rows:
            row.rpc_rate = rates.get((row.binary, row.host))
    click.echo(status.render(rows))
    down = [r for r in rows if not r.up and not r.disabled]
    if down:
        ctx.exit(3)


@cli.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@db_option
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str, db_url: str | None) -> None:
    """Create or upgrade the database schema."""
    from loom.db import migrate
    from loom.db.engine import Database

    settings = _settings(ctx, **{"database.url": db_url})
    if not settings.database.url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            await migrate.upgrade(database, revision)
            click.echo(f"database at revision {await migrate.current_revision(database)}")
        finally:
            await database.close()

    _run(run())


@cli.command("bootstrap")
@db_option
@click.pass_context
def bootstrap_command(ctx: click.Context, db_url: str | None) -> None:
    """Create the default domain, roles, admin user and project, the catalog, the flavors and the demo image."""
    from loom.db import migrate
    from loom.db.engine import Database
    from loom.identity.bootstrap import bootstrap
    from loom.objects import defaults

    settings = _settings(ctx, **{"database.url": db_url})
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            await migrate.upgrade(database)
            creds = await bootstrap(settings, database)
            await defaults.ensure(settings, database)
        finally:
            await database.close()
        click.echo(f"admin password: {creds.password}; credentials in {settings.data_dir / 'openrc'}")

    _run(run())


@cli.group()
def keys() -> None:
    """Token encryption keys."""


@keys.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Promote the staged key to primary and stage a new one. Tokens made
    with keys that fall out of the active set stop validating."""
    from loom.identity.keys import KeyRepository

    settings = _settings(ctx)
    repo = KeyRepository(settings.key_dir, max_active_keys=settings.identity.max_active_keys)
    repo.setup()
    repo.rotate()
    click.echo(f"rotated keys in {settings.key_dir}: {len(repo.keys())} active")


def main() -> None:
    cli(prog_name="loom")


if __name__ == "__main__":
    main()
