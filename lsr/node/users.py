"""Running a search node as an unprivileged user: OpenSearch and Elasticsearch both refuse root, so as
root each node manager runs its node as a system user (created when missing) from a home it can reach."""

from __future__ import annotations

import logging

from lsr.node.install import check_reachable, ensure_user, run_command

log = logging.getLogger(__name__)


def prepare_user_home(cfg, engine: str, user_env: str) -> None:
    """As root (`cfg.user` set): create the user, say so, and check that it can reach the node home."""
    if cfg.user is None:
        return
    ensure_user(cfg.user)
    log.info("running as root: %s runs as the unprivileged user %r (%s)", engine, cfg.user, user_env)
    cfg.home.mkdir(parents=True, exist_ok=True)
    check_reachable(cfg.home, cfg.user)


def hand_over(cfg) -> None:
    """Give the node home (and a shared install) to the node's user; nothing when not running as root."""
    if cfg.user is None:
        return
    for owned in [cfg.home] + ([cfg.install_dir] if cfg.install_home is not None else []):
        run_command(["chown", "-R", f"{cfg.user}:", str(owned)], f"handing {owned} to {cfg.user}")
