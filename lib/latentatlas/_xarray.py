"""Building labelled results without xarray's first-use probing for dask.

``xr.DataArray(ndarray, coords=...)`` checks every input against ``dask.array.Array``,
which imports dask.array (and with it sparse and numba) the first time it runs in a
process when dask is installed: about 1-2 s on a small machine, more than a whole small
FRE matrix takes. The results here are plain numpy arrays with plain label coordinates,
so they are wrapped directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from xarray.indexes import PandasIndex


def labelled_array(values, dims, coords, *, extra_coords=None, name=None, attrs=None) -> xr.DataArray:
    """``xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=attrs)`` for numpy data.

    Parameters
    ----------
    values : ndarray
    dims : tuple of str
    coords : dict of dim -> 1-D labels
        One index coordinate per dimension named in it (others stay unlabelled).
    extra_coords : dict of name -> (dims, ndarray), optional
        Further (non-index) coordinates.
    """
    indexes = {dim: PandasIndex(pd.Index(np.asarray(labels)), dim) for dim, labels in coords.items()}
    variables = {dim: index.create_variables()[dim] for dim, index in indexes.items()}
    for key, (var_dims, data) in (extra_coords or {}).items():
        variables[key] = xr.Variable(tuple(var_dims), np.asarray(data), fastpath=True)
    data = xr.Variable(tuple(dims), np.asarray(values), attrs=attrs, fastpath=True)
    return xr.DataArray(data, coords=xr.Coordinates(variables, indexes=indexes), name=name)
