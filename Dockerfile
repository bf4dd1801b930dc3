FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY templates ./templates
RUN pip install --no-cache-dir .
ENV PAPERMAIL_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["papermail", "up", "--bind", "0.0.0.0:8000"]
