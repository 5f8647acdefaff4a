-- The W3C traceparent of the request that created a generation, so the worker's trace links back to it.
ALTER TABLE generations ADD COLUMN traceparent text;
