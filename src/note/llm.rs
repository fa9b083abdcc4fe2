//! Optional rewrite of the evidence-built note by a language model (placeholder).
