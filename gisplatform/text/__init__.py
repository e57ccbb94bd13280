"""Legacy Vietnamese text: TCVN3 / VNI / CP1258 tables, per-column encoding detection, NFC and folding."""
from gisplatform.text.detect import (
    ENCODINGS,
    Detection,
    decode_column,
    detect_arrow_column,
    detect_column,
    lossy_mask,
    lossy_values,
    possibly_truncated,
    truncated_mask,
)
from gisplatform.text.legacy import (
    decode_cp1258,
    decode_tcvn3,
    decode_vni,
    encode_tcvn3,
    encode_vni,
    vietnamese_letters,
)
from gisplatform.text.normalize import fold, fold_column, nfc

__all__ = [
    "ENCODINGS",
    "Detection",
    "decode_column",
    "decode_cp1258",
    "decode_tcvn3",
    "decode_vni",
    "detect_arrow_column",
    "detect_column",
    "encode_tcvn3",
    "encode_vni",
    "fold",
    "fold_column",
    "lossy_mask",
    "lossy_values",
    "nfc",
    "possibly_truncated",
    "truncated_mask",
    "vietnamese_letters",
]
