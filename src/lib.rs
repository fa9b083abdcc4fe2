pub mod x {}
pub mod clinical;
