"""Events: the outbox rows every unit of work writes (publish.py), their protobuf form (encode.py), fan-out to the
streams of this process (hub.py), and the wake-up across replicas (wakeup.py)."""
