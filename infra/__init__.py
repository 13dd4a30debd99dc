"""The deployable CDK app: one stack per cluster, composed in `infra.stack` from small constructs.

Runtime code never imports this package; this package reads the runtime's step registry
(`eks_rolling.steps`) and settings model so the two cannot drift apart.

jsii starts Node when the first jsii library (aws_cdk, cdk_nag) is imported, reading JSII_NODE
then; every entry point imports `infra` first, so point it at the bundled Node 24 here.
"""

from .node import use_bundled_node

use_bundled_node()
