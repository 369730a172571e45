"""Reusable widgets: curve plots, image panels, top-k charts, model pickers, banners."""
