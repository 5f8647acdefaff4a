"""lumen: a small image-generation backend (FastAPI, asyncpg, fal-client, Supabase Storage)."""
