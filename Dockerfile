# One image for the API, the migration job and every worker pool (compose.yaml).
FROM python:3.11-slim

# bubblewrap: the embedded code sandbox (libseccomp2 builds its seccomp
# filter); compilers and runtimes for the languages of coding questions
# (python, c, cpp, java, javascript).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bubblewrap libseccomp2 gcc g++ default-jdk-headless nodejs \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY workers ./workers
COPY migrations ./migrations
# Editable, so the migrations folder beside src/ is found at run time.
RUN pip install --no-cache-dir -e .

RUN useradd --system --create-home --home-dir /var/lib/safexam safexam
USER safexam
EXPOSE 8000
CMD ["safexam", "serve"]
