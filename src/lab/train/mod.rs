//! Training: derives the clinical stage's committed data (`models/clinical/`,
//! `mappings/clinical/`) from the shared open datasets (`fhirscribe clinical build`). MTS-Dialog
//! test-1 is never read here.

pub mod clinical;
pub mod lexicons;
pub mod section_cv;
