//! Keys to the bytes a terminal sends.
