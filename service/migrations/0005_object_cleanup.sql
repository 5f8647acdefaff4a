-- The object a failed generation may have left in storage (an upload whose answer was lost), kept until
-- its removal is confirmed: a process killed while removing it leaves the work here for the next one.
ALTER TABLE generations ADD COLUMN orphan_path text;

CREATE INDEX generations_orphans ON generations (completed_at) WHERE orphan_path IS NOT NULL;
