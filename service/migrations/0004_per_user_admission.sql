-- Fair sharing: admission also bounds each user's unfinished generations, so one client's flood cannot
-- take the whole queue. A replay of a known idempotency key is answered before either bound is checked
-- (it admits nothing new). A full queue raises P0001 as before; a user at their own limit raises GC429.
DROP FUNCTION admit_generation(integer, bigint, text, uuid, uuid, text, text, text, text, jsonb, text, text, text);

CREATE FUNCTION admit_generation(
    max_unfinished integer, max_unfinished_per_user integer, lock_id bigint, lock_wait text,
    new_id uuid, new_user_id uuid, new_model_id text, new_prompt text, new_negative_prompt text,
    new_reference_image_url text, new_parameters jsonb, new_idempotency_key text,
    new_request_fingerprint text, new_traceparent text)
RETURNS SETOF generations
LANGUAGE plpgsql AS $$
DECLARE
    depth integer;
BEGIN
    IF new_idempotency_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM generations WHERE user_id = new_user_id AND idempotency_key = new_idempotency_key) THEN
        RETURN;
    END IF;
    IF max_unfinished IS NOT NULL OR max_unfinished_per_user IS NOT NULL THEN
        PERFORM set_config('lock_timeout', lock_wait, true);
        PERFORM pg_advisory_xact_lock(lock_id);
    END IF;
    IF max_unfinished_per_user IS NOT NULL THEN
        -- A statement of its own, so its snapshot sees every row admitted before the lock was granted.
        SELECT count(*) INTO depth FROM (SELECT 1 FROM generations
                                         WHERE user_id = new_user_id AND status IN ('pending', 'processing')
                                         LIMIT max_unfinished_per_user) AS unfinished;
        IF depth >= max_unfinished_per_user THEN
            RAISE EXCEPTION USING ERRCODE = 'GC429',
                MESSAGE = format('%s of your generations are unfinished (limit %s)', depth, max_unfinished_per_user);
        END IF;
    END IF;
    IF max_unfinished IS NOT NULL THEN
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
