//! Jobs over Redis Streams (being written).
