# Two images from one file, both installed from requirements.lock (hashes checked):
#   api   (the default): the API, the migration job and the grading, regrade, qie
#         and maintenance pools; no compilers, no sandbox.
#   judge: the judge pool, with bubblewrap and the languages of coding questions.
# docker build --target api -t safexam .   /   --target judge -t safexam-judge .
# Neither carries the local extra (embedded PostgreSQL and Redis, the supervisor).

FROM python:3.11-slim AS deps
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
RUN useradd --system --create-home --home-dir /var/lib/safexam safexam

FROM deps AS judge
# bubblewrap: the embedded code sandbox (libseccomp2 builds its seccomp
# filter); compilers and runtimes for python, c, cpp, java and javascript.
# Before the code, so a new commit does not reinstall them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bubblewrap libseccomp2 gcc g++ default-jdk-headless nodejs \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY src ./src
COPY workers ./workers
COPY migrations ./migrations
# Editable, so the migrations folder beside src/ is found at run time; the
# dependencies are the lock's, already installed.
RUN pip install --no-cache-dir --no-deps -e .
USER safexam
CMD ["safexam", "worker", "--queues", "judge"]

FROM deps AS api
COPY pyproject.toml README.md ./
COPY src ./src
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps -e .
USER safexam
EXPOSE 8000
CMD ["safexam", "serve"]
