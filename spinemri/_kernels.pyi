# Type stubs of the compiled kernels (spinemri/_kernels.pyx).
import numpy as np

DEPTH_MASK: int
CORE_BIT: int
DEEP_BIT: int

def label_classes(
    lab: np.ndarray,
    h0: int,
    h1: int,
    h2: int,
    depth: bool = ...,
    d0: int = ...,
    d1: int = ...,
    d2: int = ...,
) -> np.ndarray: ...
def class_histogram(
    lab: np.ndarray, values: np.ndarray, code: np.ndarray, lo: int, nbins: int, n_ids: int
) -> np.ndarray: ...
def candidates(
    lab: np.ndarray,
    values: np.ndarray,
    code: np.ndarray,
    thr: np.ndarray,
    seed_thr: np.ndarray,
    bright: bool,
    max_count: int,
    bound: float = ...,
    use_bound: bool = ...,
    ithr: np.ndarray | None = ...,
) -> tuple[np.ndarray, np.ndarray]: ...  # flat indices, seed flags
def grow_groups(
    lab: np.ndarray,
    values: np.ndarray,
    code: np.ndarray,
    offset: np.ndarray,
    idx: np.ndarray,
    cut: np.ndarray,
    sign: float,
    bounds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]: ...
def vertebra_tables(
    lab: np.ndarray, values: np.ndarray, lr_axis: int, n_ids: int, lo: int, nbins: int
) -> tuple[np.ndarray, np.ndarray]: ...
def nonzero_box(a: np.ndarray) -> tuple[int, int, int, int, int, int] | None: ...
def sparse_components(
    idx: np.ndarray, n0: int, n1: int, n2: int, connectivity: int, codes: np.ndarray | None = ...
) -> tuple[np.ndarray, int]: ...
def label_moments(
    lab: np.ndarray, n_labels: int, lin: np.ndarray, offset: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...  # count, sums, products, min, max
def label_moments_bbox(
    lab: np.ndarray, n_labels: int, lin: np.ndarray
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    tuple[int, int, int, int, int, int] | None,
    int,
]: ...  # count, sums, products, min, max (whole-array indices), box, largest value
def dilate_box(a: np.ndarray, h0: int, h1: int, h2: int) -> np.ndarray: ...
def code_histogram(code: np.ndarray, values: np.ndarray, lo: int, nbins: int, n_codes: int) -> np.ndarray: ...
def value_range(values: np.ndarray) -> tuple[int, int] | None: ...
def shell_histogram(
    ids: np.ndarray, values: np.ndarray, h0: int, h1: int, h2: int, lo: int, nbins: int
) -> np.ndarray: ...
def shell_histogram_range(
    ids: np.ndarray, values: np.ndarray, h0: int, h1: int, h2: int, lo: int, nbins: int
) -> tuple[int, np.ndarray]: ...  # first bin, counts from it to the last non-zero bin
def labels_with_code(code: np.ndarray, lab: np.ndarray, n_ids: int, bits: int = ...) -> np.ndarray: ...
def edge_rings(
    lab: np.ndarray,
    deep: np.ndarray,
    idx: np.ndarray,
    bounds: np.ndarray,
    rows: np.ndarray,
    deep_bits: int = ...,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
