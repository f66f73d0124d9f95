# The Régua service (scheduler, workers, FastAGI IVR, HTTP API). docker-compose.yml runs it
# beside Redis and Asterisk.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dialer dialer
COPY ivr ivr
COPY sms_gateway sms_gateway
COPY config config
COPY prompts prompts
RUN pip install --no-cache-dir .
RUN useradd --system --home /var/lib/regua regua && mkdir -p /var/lib/regua/sounds && chown -R regua /var/lib/regua
USER regua
ENV DIALER_DATA_DIR=/var/lib/regua DIALER_SOUNDS_DIR=/var/lib/regua/sounds
EXPOSE 8080 4573
CMD ["python", "-m", "dialer", "serve", "--no-progress"]
