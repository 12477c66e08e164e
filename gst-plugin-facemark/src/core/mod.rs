//! The sans-GStreamer core: geometry, image sampling, model decoding, tracking and drawing.
//! Frames in, faces and pixels out; the element only adapts this to GStreamer.

pub mod attention;
pub mod cnn;
pub mod detector;
pub mod draw;
pub mod geometry;
pub mod image;
pub mod iris;
pub mod landmarks;
pub mod mesh;
pub mod model;
pub mod refine;
pub mod tracker;
