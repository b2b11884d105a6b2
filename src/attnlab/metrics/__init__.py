"""Localisation and faithfulness metrics for saliency maps: pure tensor functions (floor 3: imports only torch).

Boxes are (x0, y0, x1, y1) in pixels with x1, y1 exclusive; maps are (N, H, W) at the image size.

* per image: :func:`pointing_game`, :func:`energy_pointing_game`, :func:`box_iou_at_threshold`
  (with :func:`average` for the mean), :func:`deletion_auc`, :func:`insertion_auc`, :func:`road_scores` (ROAD,
  remove and debias: MoRF / LeRF curves with noisy linear imputation);
* offset- and scale-invariant, per image: :func:`minmax_normalise`, :func:`energy_shares` (object / clutter /
  background), :func:`clutter_pointing_miss`, :func:`pixel_auc`; the chance baselines :func:`uniform_maps` and
  :func:`centre_prior_maps`;
* per dataset (Choe et al. 2020): :func:`max_box_acc_v2` / :class:`MaxBoxAccV2`, :func:`pxap` / :class:`PxAP`.
"""

from ._regions import box_iou, boxes_to_masks, component_boxes, connected_components, largest_component, mask_to_box
from .baselines import CENTRE_PRIOR_SIGMA, centre_prior_maps, uniform_maps
from .claim import SHARE_REGIONS, clutter_pointing_miss, energy_shares, minmax_normalise, pixel_auc
from .faithfulness import causal_curve, curve_auc, deletion_auc, gaussian_blur, insertion_auc
from .localisation import average, box_iou_at_threshold, energy_pointing_game, pointing_game, threshold_box
from .road import ROADResult, noisy_linear_imputation, removal_masks, road_curve, road_scores
from .wsol import MaxBoxAccResult, MaxBoxAccV2, PxAP, default_thresholds, max_box_acc_v2, pxap

__all__ = [
    "CENTRE_PRIOR_SIGMA",
    "SHARE_REGIONS",
    "MaxBoxAccResult",
    "MaxBoxAccV2",
    "PxAP",
    "ROADResult",
    "average",
    "box_iou",
    "box_iou_at_threshold",
    "boxes_to_masks",
    "causal_curve",
    "component_boxes",
    "connected_components",
    "curve_auc",
    "default_thresholds",
    "deletion_auc",
    "energy_pointing_game",
    "gaussian_blur",
    "insertion_auc",
    "largest_component",
    "mask_to_box",
    "max_box_acc_v2",
    "noisy_linear_imputation",
    "pointing_game",
    "pxap",
    "removal_masks",
    "road_scores",
    "road_curve",
    "threshold_box",
    "centre_prior_maps",
    "clutter_pointing_miss",
    "energy_shares",
    "minmax_normalise",
    "pixel_auc",
    "uniform_maps",
]
