//! Code shared by the fuzz targets: [`remoting`] holds the command and typed-header round
//! trips; [`store`] plants fuzz bytes in one file of a small valid store and reopens it.

pub mod remoting;
pub mod store;
