pub mod x {}
pub mod healthscribe;
