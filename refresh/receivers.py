"""Receivers of other libraries' signals: django-q2 reports each finished task."""

from django.dispatch import receiver
from django_q.signals import post_execute

from refresh.services.schedules import scheduled_task_finished


@receiver(post_execute, dispatch_uid="refresh.scheduled_task_finished")
def task_finished(sender, *, task: dict, **kwargs):
    scheduled_task_finished(task=task)
