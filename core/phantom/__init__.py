"""The built-in procedural phantom: seeded digital bodies with an MRI, a cryosection and the truth.

``make_subject(seed=0, size="default")`` returns a `Subject` (cached on disk); see
`core.phantom.subject` for what it holds and `core.phantom.warp` for the transform.
"""
from core.phantom.subject import PHANTOM_VERSION, SIZES, Subject, cache_dir, generate, make_subject
from core.phantom.warp import PhantomTransform

__all__ = ["make_subject", "generate", "Subject", "PhantomTransform", "SIZES", "PHANTOM_VERSION", "cache_dir"]
