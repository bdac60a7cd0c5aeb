"""Wire protocol: JSON control messages, binary record frames, authentication, ids."""
