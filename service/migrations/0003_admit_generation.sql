-- Admission in one statement: the admission lock is taken, the queue counted and the row inserted on the
-- server, so the lock is held for the server's work only, never across network round trips (over a slow
-- link, four round trips under the lock capped admission below one request a second and read as overload).
-- With max_unfinished NULL there is no queue bound and no lock. Returns the new row, or no row when the
-- user's idempotency key is taken; a full queue or a lock wait beyond lock_wait raises.
CREATE FUNCTION admit_generation(
    max_unfinished integer, lock_id bigint, lock_wait text,
    new_id uuid, new_user_id uuid, new_model_id text, new_prompt text, new_negative_prompt text,
    new_reference_image_url text, new_parameters jsonb, new_idempotency_key text,
    new_request_fingerprint text, new_traceparent text)
RETURNS SETOF generations
LANGUAGE plpgsql AS $$
DECLARE
    depth integer;
BEGIN
    IF max_unfinished IS NOT NULL THEN
        PERFORM set_config('lock_timeout', lock_wait, true);
        PERFORM pg_advisory_xact_lock(lock_id);
        -- A statement of its own, so its snapshot sees every row admitted before the lock was granted.
        SELECT count(*) INTO depth FROM (SELECT 1 FROM generations WHERE status IN ('pending', 'processing')
                                         LIMIT max_unfinished) AS unfinished;
        IF depth >= max_unfinished THEN
            RAISE EXCEPTION '% generations waiting (limit %)', depth, max_unfinished;
        END IF;
    END IF;
    RETURN QUERY
        INSERT INTO generations (id, user_id, model_id, prompt, negative_prompt, reference_image_url, parameters,
                                 idempotency_key, request_fingerprint, traceparent)
        VALUES (new_id, new_user_id, new_model_id, new_prompt, new_negative_prompt, new_reference_image_url,
                new_parameters, new_idempotency_key, new_request_fingerprint, new_traceparent)
        ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING *;
END
$$;
