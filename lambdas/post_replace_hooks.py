"""Call the node's post-replace hooks once its instance is terminated."""

from eks_rolling.models import PostReplaceHooksInput
from eks_rolling.services.hooks import post_replace_hooks
from lambdas._runtime import step_handler

handler = step_handler(PostReplaceHooksInput, post_replace_hooks)
