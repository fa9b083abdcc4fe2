pub mod clinical;
