# One image for every genchaos process of docker-compose.yml: the service (default command),
# the FAL and Storage emulators, the certificate job and Locust, each with its own command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p service chaos loadtests \
    && touch service/__init__.py chaos/__init__.py loadtests/__init__.py \
    && pip install . \
    && pip uninstall -y genchaos

COPY service ./service
COPY chaos ./chaos
COPY loadtests ./loadtests
COPY deploy ./deploy
RUN pip install --no-deps .

# /certs and /data become named volumes in docker-compose.yml; they inherit this ownership.
RUN useradd --create-home --uid 10001 genchaos \
    && mkdir -p /certs /data \
    && chown genchaos /certs /data
USER genchaos

EXPOSE 8000
CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
