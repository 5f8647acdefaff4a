-- Generations: the API's records and, through status + lease, the worker's durable queue.
CREATE TABLE generations (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL,
    model_id         text NOT NULL,
    prompt           text NOT NULL,
    negative_prompt  text,
    reference_image_url text,
    parameters       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    idempotency_key  text,
    request_fingerprint text,
    fal_request_id   text,
    storage_path     text,
    image_url        text,
    error            text,
    attempts         integer NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    available_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);

-- Same key + same user is one generation, even under concurrent POSTs.
CREATE UNIQUE INDEX generations_user_idempotency_key
    ON generations (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE INDEX generations_user_created ON generations (user_id, created_at DESC, id DESC);

-- The worker's claim scans only unfinished rows.
CREATE INDEX generations_unfinished ON generations (created_at)
    WHERE status IN ('pending', 'processing');
