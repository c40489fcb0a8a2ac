"""Frontends: turn trained models into snnc IR graphs (`snnc.frontends.torch`)."""
