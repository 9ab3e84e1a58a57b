//! Kestrel's Linux sensor.
